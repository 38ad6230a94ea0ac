"""Tokens the API unit tests run with."""

TOKENS = "adm=admin,ops=operator,c1=customer:c-1,c2=customer:c-2"
ADMIN = {"Authorization": "Bearer adm"}
OPERATOR = {"Authorization": "Bearer ops"}
CUSTOMER_1 = {"Authorization": "Bearer c1"}
CUSTOMER_2 = {"Authorization": "Bearer c2"}
