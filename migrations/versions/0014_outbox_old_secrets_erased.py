"""outbox rows sent before sealing: their secrets (prepaid tokens, codes) erased from the payload

Rows queued before 0013 carry their secrets in the clear JSON payload. A row queued since has them sealed
apart (``outbox_events.sealed``) and, once sent, failed or suppressed, erased: the payload keeps only their
names under ``"sealed"``. This gives the rows already done that same shape. Sealing them instead would
need ``OUTBOX_SEAL_KEY``, which only the running app has (a migration may run without it), and would
keep nothing worth keeping: the seal of a row done is erased anyway. Rows still to send (``pending``,
``sending``) are left as they are: the worker still sends them from their payload.

Downgrade leaves the rows erased: the secrets are gone for good, which is the point.

Revision ID: t1
Revises: s1
"""
import json

import sqlalchemy as sa
from alembic import op

revision = 't1'
down_revision = 's1'
branch_labels = None
depends_on = None

# app/storage/outbox_seal.py SECRET_FIELDS, as they were when this ran (a migration does not follow the code).
SECRET_FIELDS = ('code', 'undo_code', 'undo_keyword', 'token')
SEALED = 'sealed'
STILL_TO_SEND = ('pending', 'sending')
BATCH = 500

outbox = sa.table('outbox_events', sa.column('id', sa.Integer), sa.column('payload', sa.Text),
                  sa.column('status', sa.String), sa.column('sealed', sa.Text))


def _erased(payload: str) -> str | None:
    """The payload without its secret fields (their names under "sealed"), or None when it has none."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    names = [k for k in SECRET_FIELDS if k in data]
    if not names:
        return None
    rest = {k: v for k, v in data.items() if k not in SECRET_FIELDS}
    rest[SEALED] = sorted({*names, *(rest.get(SEALED) or [])})
    return json.dumps(rest)


def upgrade() -> None:
    bind = op.get_bind()
    # Only rows whose text names a secret field; the JSON decides.
    named = sa.or_(*(outbox.c.payload.like(f'%"{name}"%') for name in SECRET_FIELDS))
    last = 0
    while True:
        rows = bind.execute(sa.select(outbox.c.id, outbox.c.payload)
                            .where(outbox.c.id > last, outbox.c.status.notin_(STILL_TO_SEND), named)
                            .order_by(outbox.c.id).limit(BATCH)).all()
        if not rows:
            break
        for row_id, payload in rows:
            erased = _erased(payload)
            if erased is not None:
                bind.execute(outbox.update().where(outbox.c.id == row_id).values(payload=erased, sealed=None))
        last = rows[-1][0]


def downgrade() -> None:
    pass   # erased secrets do not come back
