"""CycleGAN networks and losses of Hiasa et al. 2018 (ResNet-9, U-Net, PatchGAN, LSGAN, cycle, identity, GC)."""
