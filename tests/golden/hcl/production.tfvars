# Production settings for the payments stack
region        = "eu-west-1"
instance_type = "m5.large"
replicas      = 3
ratio         = 0.75
enabled       = true
owner         = null
db_password   = "${var.secret}"

availability_zones = [
  "eu-west-1a",
  "eu-west-1b", // a comment in a list
]

tags = {
  team        = "payments"
  "cost.center" = 1234
  env: "prod"
}

/* a block comment
   over two lines */
bucket_name = lower("Payments-${var.env}")
message = <<-EOT
    Hello
      world
    EOT
empty_list = []
