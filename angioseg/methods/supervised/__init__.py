"""Supervised video segmenters (U-Net, CE-Net, sequence CE-Net, 3D-2D CE-Net): training,
weights and inference."""
