"""The end-to-end run on Fashion-MNIST: tokenizer, latent cache, DiT, samples, gFID (e2e_fashion_mnist.sh)."""
