"""agents who signed in to the console or the simulator, and the audit of what each did

Revision ID: k1
Revises: m1
"""
import sqlalchemy as sa
from alembic import op

revision = 'k1'
down_revision = 'm1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'agents',
        sa.Column('subject', sa.String(length=200), primary_key=True),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('roles', sa.String(length=120), nullable=False),
        sa.Column('via', sa.String(length=20), nullable=False),
        sa.Column('first_seen', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        'agent_audit',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('agent', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('customer_id', sa.String(length=64), nullable=True),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('detail', sa.String(length=200), nullable=False),
    )
    op.create_index('ix_agent_audit_agent', 'agent_audit', ['agent'])
    op.create_index('ix_agent_audit_customer_id', 'agent_audit', ['customer_id'])
    op.create_index('ix_agent_audit_at', 'agent_audit', ['at'])


def downgrade() -> None:
    op.drop_table('agent_audit')
    op.drop_table('agents')
