"""Hip CT/MR data: the procedural hip phantom, its scanner models and the `imtrans data phantom` command."""
