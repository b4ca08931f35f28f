"""No-Pain-No-GAN training: dataset import and caching, fusion training, evaluation, and the command line."""
