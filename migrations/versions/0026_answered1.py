"""message_claims.answered_at: a message's claim is also the record that it was answered

The claim written before a message runs (v1_smsonce) now also says, once its answer has gone, that the message
was answered (``answered_at``): the answer's record is an update of the claim's row, no longer a second row in
``sms_inbox`` (``answered_at_once``). A claim without it is a run that may still be going, or one that ended without
answering (its reply owed). The inbox's ``answered_at_once`` rows are folded into the claims.

Revision ID: v1_answered1
Revises: v1_money3
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_answered1'
down_revision = 'v1_money3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('message_claims', sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE message_claims SET answered_at = (SELECT i.settled_at FROM sms_inbox i "
        "WHERE i.message_id = message_claims.message_id AND i.status = 'answered_at_once') "
        "WHERE EXISTS (SELECT 1 FROM sms_inbox i WHERE i.message_id = message_claims.message_id "
        "AND i.status = 'answered_at_once')")
    op.execute(
        "INSERT INTO message_claims (message_id, channel, claimed_at, answered_at) "
        "SELECT i.message_id, i.channel, i.received_at, COALESCE(i.settled_at, i.received_at) FROM sms_inbox i "
        "WHERE i.status = 'answered_at_once' AND NOT EXISTS "
        "(SELECT 1 FROM message_claims c WHERE c.message_id = i.message_id)")
    op.execute("DELETE FROM sms_inbox WHERE status = 'answered_at_once'")


def downgrade() -> None:
    # The answered claims back as the inbox's settled rows (no number: the claim never held one).
    op.execute(
        "INSERT INTO sms_inbox (message_id, msisdn, channel, provider, short_code, status, attempts, received_at, "
        "settled_at) SELECT c.message_id, '', c.channel, '', '', 'answered_at_once', 0, c.claimed_at, c.answered_at "
        "FROM message_claims c WHERE c.answered_at IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM sms_inbox i WHERE i.message_id = c.message_id)")
    with op.batch_alter_table('message_claims') as batch:
        batch.drop_column('answered_at')
