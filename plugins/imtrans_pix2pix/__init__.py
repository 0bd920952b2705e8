"""pix2pix (Isola et al. 2017): a conditional GAN on aligned MR/CT pairs, a method plugin on ``imtrans_core.api``."""
