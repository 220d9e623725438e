"""What both papers use: command-line plumbing, errors, atomic writes and run folders, safe
loading of checkpoints and CIFAR-10 pickles, data and the DCT, training loops, processes,
memory checks, provenance and the saving of figures."""
