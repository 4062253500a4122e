"""webhook inbox: deliveries accepted at once, applied in the background

Revision ID: d4a8f1e2b7c6
Revises: c7d2e9a41f03
Create Date: 2026-12-07 17:45:00

"""
from alembic import op
import sqlalchemy as sa

import leadbridge.db


# revision identifiers, used by Alembic.
revision = 'd4a8f1e2b7c6'
down_revision = 'c7d2e9a41f03'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_inbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('connection_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.String(length=255), nullable=False),
        sa.Column('event', sa.JSON(), nullable=False),
        sa.Column('received_at', leadbridge.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('retry_at', leadbridge.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('parked_at', leadbridge.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('connection_id', 'event_id', name='uq_webhook_inbox_event'),
    )
    with op.batch_alter_table('webhook_inbox', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_inbox_pending', ['connection_id', 'parked_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('webhook_inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_inbox_pending')
    op.drop_table('webhook_inbox')
