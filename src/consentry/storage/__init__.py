"""Storage: typed tables, the async engine and unit of work, and one repository per aggregate."""
