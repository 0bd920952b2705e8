"""The paper's application (§3.2): segmentation of MR through synthetic CT, with a two-channel 2-D U-Net."""
