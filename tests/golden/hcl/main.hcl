terraform {
  required_version = ">= 1.5"
}

resource "aws_s3_bucket" "logs" {
  bucket = "acme-logs"
  acl    = "private"

  ingress {
    from_port = 80
  }
  ingress {
    from_port = 443
  }
}

variable "region" { default = "eu-west-1" }
count = var.enabled ? 1 : 0
