"""security events of signing in by code named for what happened, not for the web

The web fallback and the chatbot both sign customers in with a code by SMS and recorded it as
``web_code_sent``, ``web_sign_in``, ``web_sign_in_refused``, ``web_throttled`` and ``web_sign_out``,
the chatbot's rows with channel ``rasa``: an analyst reading "web_sign_in, rasa" could not tell which
door was used. The kinds are now ``code_sent``, ``sign_in``, ``sign_in_refused``, ``sign_in_throttled``
and ``sign_out``, the channel telling which. Renaming the stored rows (rather than every reader
accepting both names) gives whoever queries the table itself (an export, a SIEM) one vocabulary;
the product's readers also map a straggling old name (``engine.security_audit.current_kind``).

Downgrade gives the rows their old names back (they were all written under them).

Revision ID: u1_chat
Revises: t1
"""
import sqlalchemy as sa
from alembic import op

revision = 'u1_chat'
down_revision = 't1'
branch_labels = None
depends_on = None

# engine/security_audit.py RENAMED_KINDS, as it was when this ran (a migration does not follow the code).
RENAMED = {'web_code_sent': 'code_sent', 'web_sign_in': 'sign_in', 'web_sign_in_refused': 'sign_in_refused',
           'web_throttled': 'sign_in_throttled', 'web_sign_out': 'sign_out'}

events = sa.table('security_events', sa.column('kind', sa.String))


def _rename(names: dict[str, str]) -> None:
    for old, new in names.items():
        op.execute(events.update().where(events.c.kind == old).values(kind=new))


def upgrade() -> None:
    _rename(RENAMED)


def downgrade() -> None:
    _rename({new: old for old, new in RENAMED.items()})
