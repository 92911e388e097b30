"""Canonical column names shared by every stage (use these constants, not string literals)."""

ID = "id"
USER_ID = "user_id"
PRODUCT_ID = "product_id"
TITLE = "title"
TEXT = "text"
RATING = "rating"
POLARITY = "polarity"
CREATED_AT = "created_at"
LANGUAGE = "language"
ATTRIBUTES = "attributes"

AGE = "age"
GENDER = "gender"
REGION = "region"
EMAIL = "email"
PHONE = "phone"
TIMEZONE = "timezone"

CATEGORY = "category"
PRICE = "price"
CURRENCY = "currency"
DESCRIPTION = "description"

INVOICE = "invoice"
QUANTITY = "quantity"
UNIT_PRICE = "unit_price"
TIME = "time"

EVENT_ID = "event_id"
CAMPAIGN = "campaign"
VARIANT = "variant"
CHANNEL = "channel"
EVENT_TYPE = "type"
VALUE = "value"

GRANTED = "granted"
AT = "at"
SOURCE = "source"

# Derived tables (profiles, segments, plans).
SEGMENT = "segment"

# Quarantine report columns.
Q_ROW = "row"
Q_COLUMN = "column"
Q_VALUE = "value"
Q_REASON = "reason"
