"""The refunds robot: approve eligible refunds, hand every other one to a person."""
