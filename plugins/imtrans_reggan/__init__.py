"""RegGAN (Kong et al. 2021): translation with a registration network in the loss, a method plugin on ``imtrans_core.api``."""
