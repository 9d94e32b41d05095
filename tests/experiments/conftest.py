"""Shared helpers of the experiment tests."""


def without_keys(obj, keys: set[str]):
    """``obj`` (nested dicts/lists, e.g. a results.json) without the entries named in ``keys``
    (wall-clock timings, which differ between runs that are otherwise identical)."""
    if isinstance(obj, dict):
        return {k: without_keys(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [without_keys(v, keys) for v in obj]
    return obj
