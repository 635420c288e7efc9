"""`Repository` puts every aggregate's store on one object (ingest/repository/facade.py): that
is only sound while no two stores use one attribute or method name, or one would silently
shadow the other."""

from ingest.repository.facade import AGGREGATES, Repository


class _Database(dict):
    """Enough of a pymongo Database to build a store: a collection is its name."""

    def __missing__(self, name):
        return name


def names_of(store) -> set:
    methods = {name for name in vars(store) if not name.startswith("__")}
    return (methods | set(vars(store(_Database())))) - {"create_indexes"}  # each has its own, called in turn


def test_no_two_aggregates_share_a_name():
    owner = {}
    for store in AGGREGATES:
        for name in names_of(store):
            assert name not in owner, f"{store.__name__}.{name} shadows {owner[name].__name__}.{name}"
            owner[name] = store
    facade_own = {name for name in vars(Repository) if not name.startswith("__")} | {"db", "_indexed"}
    assert not (facade_own - {"create_indexes"}) & set(owner)
    assert set(Repository.__mro__[1:-1]) == set(AGGREGATES)
