"""The fly stage1 flavor: runs a pod's single app chrooted in a private mount namespace."""
