"""Diffusion Lab: the chapter 'Image & Video Generation' made live."""

__version__ = "0.1.0"
