"""The library under the command line: what `angioseg` verbs, a server and a batch job call.

- `segment`: read an input, run a method, optional temporal filter (`segment_input`,
  `segment_video`, `segment_to_bundle`, `apply_temporal_filter`);
- `bundle`: write and read a segmentation bundle, with the output checks that never destroy
  data (`write_bundle`, `read_bundle`, `check_bundle_target`);
- `propagate`: carry labelled frames through a run with a propagation method
  (`propagate_to_bundle`, `propagate_video`, `read_prompts`);
- `scoring`: score methods against reference masks (`evaluate_methods`) on an `Executor`;
  `propagation_eval`: the one-shot protocols for propagation methods (`prompt_frame`,
  `score_propagation`, `evaluate_propagation`), which `evaluate_methods` hands them to;
- `executors`: `LocalExecutor`, `ProcessExecutor` (a cluster executor implements the same);
- `report`: JSON and Markdown reports;
- `datasets`: phantom and pseudo-video data sets; `demo`: the demo.

Every public function is typed and keyword-only past its main arguments; none parses
command-line arguments or prints.
"""

from angioseg.pipelines.bundle import Bundle, check_bundle_target, is_bundle, read_bundle, write_bundle
from angioseg.pipelines.executors import Executor, LocalExecutor, ProcessExecutor, make_executor
from angioseg.pipelines.propagate import propagate_to_bundle, propagate_video, read_prompts
from angioseg.pipelines.propagation_eval import evaluate_propagation, prompt_frame, score_propagation
from angioseg.pipelines.report import markdown_report, report_paths, write_report
from angioseg.pipelines.scoring import evaluate_methods, score
from angioseg.pipelines.segment import DEFAULT_METHOD, apply_temporal_filter, segment_input, segment_to_bundle, segment_video

__all__ = [
    "Bundle",
    "DEFAULT_METHOD",
    "Executor",
    "LocalExecutor",
    "ProcessExecutor",
    "apply_temporal_filter",
    "check_bundle_target",
    "evaluate_methods",
    "evaluate_propagation",
    "is_bundle",
    "make_executor",
    "markdown_report",
    "prompt_frame",
    "propagate_to_bundle",
    "propagate_video",
    "read_bundle",
    "read_prompts",
    "report_paths",
    "score",
    "score_propagation",
    "segment_input",
    "segment_to_bundle",
    "segment_video",
    "write_bundle",
    "write_report",
]
