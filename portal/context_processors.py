"""Template context of every page: the domain vocabulary for the browser (``json_script``)."""

from archive.vocabulary import as_json_ready

_VOCABULARY = as_json_ready()


def vocabulary(request):
    """``vocabulary``: phases, subtypes, variants, sessions, rendered once per page by base.html."""
    return {"vocabulary": _VOCABULARY}
