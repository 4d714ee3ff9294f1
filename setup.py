"""The bootstrap's optional C fast path (streams/bootstrap/native.py); everything else about
the package is in pyproject.toml. Without a C compiler the install goes on without it and the
bootstrap converts with polars instead."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streams.bootstrap._csvfast",
            sources=["streams/bootstrap/_csvfast.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
