"""Hold me tight!: DCT subspaces, subspace DeepFool, margin distributions and their pipeline,
L2 PGD with Dykstra's projection, attack evaluation, ImageNet training, margin plots."""
