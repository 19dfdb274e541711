"""augsvc's companion training package (optimizers, normalisation, regularisation, trainer)."""

__all__: list[str] = []
