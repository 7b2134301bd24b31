//! Every item a query matches, page after page, through the SDK's paginator.

use crate::build_item::Item;
use crate::errors::store_error;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use buildlore_core::ports::StoreError;

pub(crate) async fn every_item(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    query
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(store_error)
}
