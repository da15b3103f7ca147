"""PinPoint3D network: configs, voxelisation, backbone, decoders, checkpoints."""
