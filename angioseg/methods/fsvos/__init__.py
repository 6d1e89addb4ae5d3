"""FSVOS (few-shot video object segmentation with local matching): one labelled frame ->
every frame. `segmenter` is the method `fsvos`; `training` trains its network."""
