"""nameko DependencyProviders of the calc service."""

from nameko.extensions import DependencyProvider

from carbon_common.config import setting
from carbon_common.mongo import MongoDatabase

from calc.loader import load_catalog
from calc.repository import CalcRepository


class MethodologyCatalog(DependencyProvider):
    """The validated methodology catalog, loaded once at start (a bad file stops the start).

    CALC_METHODOLOGY_DIR (config or env) points at another directory, e.g. a mounted volume
    holding newly published versions; default: the files packaged with the service.
    """

    def setup(self):
        self.catalog = load_catalog(setting("CALC_METHODOLOGY_DIR", "", self.container.config) or None)

    def get_dependency(self, worker_ctx):
        return self.catalog


class Repository(MongoDatabase):
    """CalcRepository over the service's own database; indexes ensured at start."""

    def setup(self):
        super().setup()
        self.repository = CalcRepository(self.database)
        self.repository.ensure_indexes()

    def get_dependency(self, worker_ctx):
        return self.repository
