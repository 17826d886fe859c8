"""Create index versions, their products and the active pointer.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('index_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('model_name', sa.String(length=200), nullable=False),
    sa.Column('model_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('dimension', sa.Integer(), nullable=False),
    sa.Column('index_type', sa.String(length=64), nullable=True),
    sa.Column('product_count', sa.Integer(), nullable=True),
    sa.Column('skipped_count', sa.Integer(), nullable=False),
    sa.Column('truncated_count', sa.Integer(), nullable=True),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('source_checksum', sa.String(length=64), nullable=False),
    sa.Column('artifact_path', sa.Text(), nullable=True),
    sa.Column('artifact_checksum', sa.String(length=64), nullable=True),
    sa.Column('build_seconds', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('building', 'ready', 'failed', 'retired')", name=op.f('ck_index_versions_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_index_versions'))
    )
    op.create_table('active_index',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_active_index_single_row')),
    sa.ForeignKeyConstraint(['version_id'], ['index_versions.id'], name=op.f('fk_active_index_version_id_index_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_active_index'))
    )
    op.create_table('products',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.String(length=200), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=200), nullable=False),
    sa.Column('brand', sa.String(length=200), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('text_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['index_versions.id'], name=op.f('fk_products_version_id_index_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('version_id', 'position', name=op.f('pk_products')),
    sa.UniqueConstraint('version_id', 'product_id', name=op.f('uq_products_version_id_product_id'))
    )


def downgrade() -> None:
    op.drop_table('products')
    op.drop_table('active_index')
    op.drop_table('index_versions')
