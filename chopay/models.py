"""Every table of the service, imported explicitly so that ``Base.metadata`` is complete.

Alembic's environment and the schema drift test read :data:`metadata`; a feature that adds
models adds its module here, as the application factory lists its blueprints.
"""

from __future__ import annotations

from chopay import idempotency, keyrotation, users
from chopay.db import Base
from chopay.web import sessions as web_sessions
from disbursement import models as disbursement_models
from merchants import models as merchant_models
from merchants.intake import models as intake_models
from payments.ledger import models as ledger_models
from payments.reconciliation import models as reconciliation_models

MODEL_MODULES = (
    users,
    idempotency,
    keyrotation,
    ledger_models,
    disbursement_models,
    reconciliation_models,
    merchant_models,
    web_sessions,
    intake_models,
)

metadata = Base.metadata
