"""DSA-LTDNet (liver-tumour segmentation on the key frame of a DSA run): `keyframe` (key-frame
selection, frame difference, background subtraction, TDL window), `inputs` (network inputs and
the key-frame prediction), `weights` (the variants of the paper's tables and their files),
`training`, `evaluation` (the tables' metrics)."""
