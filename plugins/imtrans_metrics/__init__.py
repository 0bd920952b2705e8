"""Image-similarity and overlap metrics of the paper: MAE, PSNR, SSIM, mutual information, Dice."""
