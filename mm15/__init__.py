"""mm15: the MM1.5 data-centric training recipe as a pipeline."""

__version__ = "0.1.0"
