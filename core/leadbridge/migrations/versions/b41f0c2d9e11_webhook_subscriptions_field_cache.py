"""webhook subscriptions and the remote field cache

Revision ID: b41f0c2d9e11
Revises: 7568c166a7bd
Create Date: 2026-12-07 08:40:00

"""
from alembic import op
import sqlalchemy as sa

import leadbridge.db


# revision identifiers, used by Alembic.
revision = 'b41f0c2d9e11'
down_revision = '7568c166a7bd'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('webhook_subscription',
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=1024), nullable=True),
    sa.Column('remote_ids', sa.JSON(), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('changed_at', leadbridge.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], name=op.f('fk_webhook_subscription_connection_id_connection'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', name=op.f('pk_webhook_subscription'))
    )
    op.create_table('remote_field_cache',
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=128), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('fetched_at', leadbridge.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], name=op.f('fk_remote_field_cache_connection_id_connection'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', 'object_type', name=op.f('pk_remote_field_cache'))
    )


def downgrade():
    op.drop_table('remote_field_cache')
    op.drop_table('webhook_subscription')
