"""CUT and FastCUT (Park et al. 2020): contrastive unpaired translation, a method plugin on ``imtrans_core.api``."""
