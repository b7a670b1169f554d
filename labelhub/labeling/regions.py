"""Temporary door: region validation lives in labelhub.regions.validation. learning/services.py still
imports region_mask from here while another branch edits that file; removed once it imports the floor."""

from labelhub.regions.validation import region_mask

__all__ = ["region_mask"]
