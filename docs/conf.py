"""Sphinx configuration of archfit's documentation (``python -m sphinx -W docs out``).

Sphinx, because archfit's docstrings are numpydoc and the API reference is
read from them (autodoc + numpydoc); MyST, so that the guide stays Markdown
that reads as well on a code host as in the built site.
"""
import archfit

project = "archfit"
author = "archfit's developers"
copyright = "archfit's developers (BSD-3-Clause)"
release = version = archfit.__version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.intersphinx", "numpydoc"]
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

# Every reference must resolve (``sphinx -n``). Names from other projects link
# to those projects' pages through intersphinx, from inventories written here
# for the few names archfit's docs cite, so that a build needs no network;
# a new citation of another project's name fails the build until it is added.
nitpicky = True
EXTERNAL = {
    "python": ("https://docs.python.org/3/", {
        "pathlib.Path": ("py:class", "library/pathlib.html#pathlib.Path"),
    }),
    "numpy": ("https://numpy.org/doc/stable/", {
        "numpy.ndarray": ("py:class", "reference/generated/numpy.ndarray.html"),
        "numpy.dtype": ("py:class", "reference/generated/numpy.dtype.html"),
    }),
}


def _inventories(folder):
    """Sphinx inventories (version 2) of EXTERNAL's names, one file a project."""
    import os
    import zlib
    os.makedirs(folder, exist_ok=True)
    mapping = {}
    for project, (url, names) in EXTERNAL.items():
        lines = "".join(f"{name} {role} 1 {page}#$ -\n"
                        for name, (role, page) in sorted(names.items()))
        path = os.path.join(folder, f"{project}.inv")
        with open(path, "wb") as f:
            f.write(f"# Sphinx inventory version 2\n# Project: {project}\n# Version: \n"
                    "# The remainder of this file is compressed using zlib.\n".encode())
            f.write(zlib.compress(lines.encode()))
        mapping[project] = (url, path)
    return mapping


def _folder():
    import os
    import tempfile
    return os.path.join(tempfile.gettempdir(), f"archfit-docs-inventories-{os.getpid()}")


intersphinx_mapping = _inventories(_folder())
