"""What a family of methods shares: data preparation, prediction, evaluation hooks.

``families`` sits between ``methods`` (one folder per method) and ``engine``
(generic machinery). Each family's ``config`` module is torch-free, so method
configs built on it can be listed and validated without starting PyTorch.
"""
