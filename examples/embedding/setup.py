"""The extension module only; metadata in pyproject.toml."""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

from archfit.kernels import get_include

setup(ext_modules=cythonize(
    [Extension("archfit_embedding_example._loop",
               ["src/archfit_embedding_example/_loop.pyx"],
               include_dirs=[numpy.get_include()])],
    include_path=[get_include()],        # where archfit/kernels.pxd is
    compiler_directives={"language_level": 3},
))
