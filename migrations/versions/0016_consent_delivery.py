"""consent history: where an opt-in's alerts go (``delivery``), apart from where the customer said it

Until now an opt-in row had one channel: the menus and keywords wrote where the customer spoke (their
alerts all went by SMS), the "tell me when power is back" path (source ``self-service``) wrote where the
alert goes. The rows already written get the delivery they had: ``sms`` for the first kind, their channel
for the second. Their ``channel`` is left as written (history is not rewritten).

Revision ID: u1_alerts
Revises: u1_chat
"""
import sqlalchemy as sa
from alembic import op

revision = 'u1_alerts'
down_revision = 'u1_chat'
branch_labels = None
depends_on = None

changes = sa.table('consent_changes', sa.column('action', sa.String), sa.column('source', sa.String),
                   sa.column('channel', sa.String), sa.column('delivery', sa.String))


def upgrade() -> None:
    with op.batch_alter_table('consent_changes') as batch:
        batch.add_column(sa.Column('delivery', sa.String(length=20), nullable=True))
    opt_ins = changes.c.action == 'opt_in'
    op.execute(changes.update().where(opt_ins, changes.c.source == 'self-service')
               .values(delivery=changes.c.channel))
    op.execute(changes.update().where(opt_ins, changes.c.source != 'self-service').values(delivery='sms'))


def downgrade() -> None:
    with op.batch_alter_table('consent_changes') as batch:
        batch.drop_column('delivery')
