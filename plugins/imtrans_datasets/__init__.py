"""Real CT/MR data sets: volumes in folders (unpaired pools, optional aligned pairs) and the SynthRAD layout."""
