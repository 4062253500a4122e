"""one link per hub record and connector object

A hub record may be linked to at most one record of each connector object: a second link meant a
second vendor record created by a race (overlapping runs), and it went unnoticed. Existing
duplicates are resolved before the constraint is added: the oldest link is kept, the others are
dropped (their vendor records are then reported as CRM duplicates by the next pull).

Revision ID: c7d2e9a41f03
Revises: b41f0c2d9e11
Create Date: 2026-12-07 15:55:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7d2e9a41f03'
down_revision = 'b41f0c2d9e11'
branch_labels = None
depends_on = None


def upgrade():
    link = sa.table(
        'link',
        sa.column('id', sa.Integer),
        sa.column('connection_id', sa.Integer),
        sa.column('object_type', sa.String),
        sa.column('hub_kind', sa.String),
        sa.column('hub_id', sa.Integer),
    )
    keep = (
        sa.select(sa.func.min(link.c.id))
        .group_by(link.c.connection_id, link.c.object_type, link.c.hub_kind, link.c.hub_id)
        .scalar_subquery()
    )
    op.execute(link.delete().where(link.c.id.not_in(keep)))
    with op.batch_alter_table('link', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            'uq_link_hub_record', ['connection_id', 'object_type', 'hub_kind', 'hub_id']
        )


def downgrade():
    with op.batch_alter_table('link', schema=None) as batch_op:
        batch_op.drop_constraint('uq_link_hub_record', type_='unique')
