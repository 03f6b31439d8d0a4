"""role_swaps: "swap speakers" decisions on calls (see webapp/models.py RoleSwap)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('role_swaps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('by_user_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('before', JSON, nullable=True),
    sa.Column('after', JSON, nullable=True),
    sa.ForeignKeyConstraint(['by_user_id'], ['users.id'], name=op.f('fk_role_swaps_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_swaps'))
    )
    op.create_index('ix_role_swaps_call_id', 'role_swaps', ['call_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_role_swaps_call_id', table_name='role_swaps')
    op.drop_table('role_swaps')
