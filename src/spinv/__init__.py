"""spinv: structure-preserving machine learning for imaging inverse problems (CT and MRI).

Subpackages follow the concepts of F. Sherry's thesis (``shared/seeds``):
``operators`` (physics), ``sampling``, ``data``, ``metrics``, ``variational``, ``bilevel``
(ch. 1), ``nn.equivariant`` and ``learned`` (ch. 2), ``nn.nonexpansive`` and ``learned.pnp``
(ch. 3), ``training``, ``report`` and the ``spinv`` command line.
"""

__version__ = "0.1.0"
