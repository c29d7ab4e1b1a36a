"""Notices read back from the structure's MSSanté mailbox: parsing (``parse``) and the IMAP reader (``imap``)."""
