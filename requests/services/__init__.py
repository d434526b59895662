"""Every write of the portal's state goes through a service function in this package."""
