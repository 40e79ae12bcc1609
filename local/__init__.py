"""What runs on a developer's machine and never ships: the Engage sandbox, the local stack, drivers."""
