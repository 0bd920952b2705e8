"""Hip CT/MR data: the procedural hip phantom and the folder / SynthRAD dataset plugins."""
