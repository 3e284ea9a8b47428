"""Sphinx configuration of archfit's documentation (``python -m sphinx -W docs out``).

Sphinx, because archfit's docstrings are numpydoc and the API reference is
read from them (autodoc + numpydoc); MyST, so that the guide stays Markdown
that reads as well on a code host as in the built site.
"""
import archfit

project = "archfit"
author = "archfit's developers"
release = version = archfit.__version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "numpydoc"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
html_theme = "alabaster"
html_theme_options = {"description": "Fast CPU training of neural networks, in the "
                                     "vocabulary of statistics"}
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
suppress_warnings = ["myst.header"]
