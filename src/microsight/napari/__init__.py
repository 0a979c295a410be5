"""napari plugin: predict, train and evaluate microsight models inside the viewer.

Installed with ``pip install "microsight[napari]"``; napari finds it through
the ``napari.manifest`` entry point (``napari.yaml``). The widgets call only
:mod:`microsight.api`, so everything they do is also available on the command
line. Nothing here is imported by ``import microsight``.
"""
