// The server's JSON API and the run-length encoding it uses for masks (see docs/serve.md).

/** Call the API; resolves to the parsed JSON, rejects with an Error carrying the server's one-line detail. */
export async function api(path, { method = "GET", json, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `${response.status} ${response.statusText}`;
    throw new Error(detail);
  }
  return data;
}

/** Fetch a file; resolves to {blob, name} (name from Content-Disposition), rejects with the server's one-line detail. */
export async function fetchBlob(path) {
  const response = await fetch(path);
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = disposition.match(/filename="?([^";]+)"?/);
  return { blob: await response.blob(), name: match ? match[1] : "" };
}

/** Upload a file as the request body, reporting progress (0..1); resolves to the run. */
export function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `/api/upload?name=${encodeURIComponent(file.name)}`);
    request.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    request.onload = () => {
      let data = null;
      try { data = JSON.parse(request.responseText); } catch { data = null; }
      if (request.status >= 200 && request.status < 300) resolve(data);
      else reject(new Error((data && data.detail) || `upload failed (${request.status})`));
    };
    request.onerror = () => reject(new Error("upload failed: the server could not be reached"));
    request.send(file);
  });
}

/** Decode {size: [H, W], values, counts} into a Uint8Array of H*W label ids. */
export function decodeRLE(rle) {
  const [height, width] = rle.size;
  const out = new Uint8Array(height * width);
  let at = 0;
  for (let i = 0; i < rle.values.length; i++) {
    out.fill(rle.values[i], at, at + rle.counts[i]);
    at += rle.counts[i];
  }
  return out;
}

/** Encode a Uint8Array of H*W values as {size, values, counts}. */
export function encodeRLE(array, height, width) {
  const values = [];
  const counts = [];
  let current = array[0];
  let run = 0;
  for (let i = 0; i < array.length; i++) {
    if (array[i] === current) { run++; continue; }
    values.push(current); counts.push(run);
    current = array[i]; run = 1;
  }
  if (array.length) { values.push(current); counts.push(run); }
  return { size: [height, width], values, counts };
}
